/** requestDefaults: the HTTP front end's fallbacks follow CONFIG SET without being rebuilt per request. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Settings } from '../../src/api/settings.ts';
import { requestDefaults } from '../../src/node/node.ts';

test('requestDefaults reads the settings once and again after a change', () => {
  const settings = new Settings();
  const defaults = requestDefaults(settings);
  const first = defaults();
  assert.equal(defaults(), first, 'rebuilt without a change');
  assert.equal(first.r, 'quorum');
  settings.set('default-read-consistency', 'one');
  const second = defaults();
  assert.notEqual(second, first);
  assert.equal(second.r, 'one');
  settings.set('request-timeout-ms', '1234');
  assert.equal(defaults().timeoutMs, 1234);
  assert.equal(defaults().r, 'one');
});
