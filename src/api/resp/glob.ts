/**
 * Redis's glob matcher (util.c stringmatchlen), byte for byte, so KEYS, SCAN
 * MATCH and CONFIG GET select exactly what Redis would: `*`, `?`, `[abc]`,
 * `[^a-z]`, and `\` escapes. Also stops early on hopeless `*` backtracking
 * as Redis does, so a pattern like `a*a*a*…b` cannot take exponential time.
 */

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

export function globMatch(pattern: Uint8Array, text: Uint8Array, nocase = false): boolean {
  const skip = { longer: false };
  return matchFrom(pattern, 0, text, 0, nocase, skip);
}

function matchFrom(p: Uint8Array, pi: number, s: Uint8Array, si: number, nocase: boolean, skip: { longer: boolean }): boolean {
  const pEnd = p.length;
  const sEnd = s.length;
  const at = (i: number): number => (i < pEnd ? (p[i] as number) : 0);
  while (pi < pEnd && si < sEnd) {
    const c = p[pi] as number;
    if (c === 42) {
      while (pi + 1 < pEnd && p[pi + 1] === 42) pi++;
      if (pi + 1 === pEnd) return true;
      while (si < sEnd) {
        if (matchFrom(p, pi + 1, s, si, nocase, skip)) return true;
        if (skip.longer) return false;
        si++;
      }
      skip.longer = true;
      return false;
    } else if (c === 63) {
      si++;
    } else if (c === 91) {
      pi++;
      const not = at(pi) === 94;
      if (not) pi++;
      let match = false;
      const sc = s[si] as number;
      for (;;) {
        if (at(pi) === 92 && pEnd - pi >= 2) {
          pi++;
          if (at(pi) === sc) match = true;
        } else if (at(pi) === 93) {
          break;
        } else if (pi >= pEnd) {
          pi--;
          break;
        } else if (pEnd - pi >= 3 && at(pi + 1) === 45) {
          let start = at(pi);
          let end = at(pi + 2);
          let ch = sc;
          if (start > end) [start, end] = [end, start];
          if (nocase) {
            start = lower(start);
            end = lower(end);
            ch = lower(ch);
          }
          pi += 2;
          if (ch >= start && ch <= end) match = true;
        } else if (nocase ? lower(at(pi)) === lower(sc) : at(pi) === sc) {
          match = true;
        }
        pi++;
      }
      if (not) match = !match;
      if (!match) return false;
      si++;
    } else {
      if (c === 92 && pEnd - pi >= 2) pi++;
      const pc = at(pi);
      const sc = s[si] as number;
      if (nocase ? lower(pc) !== lower(sc) : pc !== sc) return false;
      si++;
    }
    pi++;
    if (si === sEnd) {
      while (pi < pEnd && p[pi] === 42) pi++;
      break;
    }
  }
  return pi >= pEnd && si === sEnd;
}
