import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { checkUrl, parseMqttUrl } from './url.js';

const dir = mkdtempSync(join(tmpdir(), 'coalmine-mqtt-url-'));
const pem = join(dir, 'a.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseMqttUrl', () => {
  it('defaults to QoS 1, clean start, MQTT 5 and a random client id', () => {
    const a = parseMqttUrl('mqtt://127.0.0.1:1883');
    const b = parseMqttUrl('mqtt://127.0.0.1:1883');
    expect(a).toMatchObject({
      qos: 1,
      clean: true,
      version: 5,
      keepalive: 10,
      url: 'mqtt://127.0.0.1:1883',
      tls: undefined,
    });
    expect(a.clientId).toMatch(/^coalmine-[0-9a-f]{8}$/);
    expect(a.clientId).not.toBe(b.clientId);
  });

  it('takes credentials out of the URL it hands to mqtt.js', () => {
    const cfg = parseMqttUrl('mqtts://al%40ice:s%2Fcret@broker:8883?qos=2&clientId=me&version=4', 'eu-1');
    expect(cfg).toMatchObject({ url: 'mqtts://broker:8883', username: 'al@ice', password: 's/cret' });
    expect(cfg).toMatchObject({ qos: 2, clientId: 'me', version: 4 });
  });

  it('reads the TLS options of mqtts:// and passwordEnv=', () => {
    expect(parseMqttUrl('mqtts://broker').tls).toEqual({ servername: 'broker', rejectUnauthorized: true });
    process.env.COALMINE_TEST_MQTT_PW = 'pw';
    try {
      const cfg = parseMqttUrl(
        `mqtts://bob@127.0.0.1:8883?ca=${pem}&cert=${pem}&key=${pem}&servername=mq.internal&passwordEnv=COALMINE_TEST_MQTT_PW`,
      );
      expect(cfg).toMatchObject({ username: 'bob', password: 'pw', url: 'mqtts://127.0.0.1:8883' });
      expect(cfg.tls).toMatchObject({ servername: 'mq.internal', rejectUnauthorized: true });
      expect(Object.keys(cfg.tls ?? {}).sort()).toEqual([
        'ca',
        'cert',
        'key',
        'rejectUnauthorized',
        'servername',
      ]);
    } finally {
      delete process.env.COALMINE_TEST_MQTT_PW;
    }
  });

  it('gives a persistent session a stable client id from the client name', () => {
    expect(parseMqttUrl('mqtt://h?clean=false', 'eu-1').clientId).toBe('coalmine-eu-1');
  });

  it('rejects what it does not understand, naming the option and hiding the password', () => {
    for (const [url, why] of [
      ['mqtt://u:secret@h?qos=3', /qos= must be one of 0, 1, 2/],
      ['mqtt://u:secret@h?version=3', /version= must be one of 5, 4/],
      ['mqtt://u:secret@h?clean=maybe', /clean=/],
      ['mqtt://u:secret@h?clean=false', /clientId=/],
      ['mqtt://u:secret@h?Qos=1', /unknown option Qos=/],
    ] as const) {
      let err: unknown;
      try {
        parseMqttUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).not.toContain('secret');
    }
  });
});

describe('checkUrl', () => {
  it('passes good URLs; clean=false without clientId= depends on the client name, so it is not judged', () => {
    expect(checkUrl(`mqtts://u:p@h:8883?qos=0&ca=${pem}&insecure=true`)).toEqual([]);
    expect(checkUrl('mqtt://h?clean=false')).toEqual([]);
  });

  it('lists every problem, each naming its option', () => {
    expect(checkUrl(`mqtt://h?qos=5&keepalive=70000&ca=${pem}&servername=x`)).toEqual([
      'qos= must be one of 0, 1, 2, got "5"',
      expect.stringMatching(/^keepalive= must be an integer from 0 to 65535 \(seconds/),
      'ca= is a TLS option: use mqtts:// for TLS',
      'servername= is a TLS option: use mqtts:// for TLS',
    ]);
    expect(checkUrl(`mqtts://h?key=${pem}&ca=/nonexistent/ca.pem&insecure=perhaps`)).toEqual([
      'ca=/nonexistent/ca.pem: no such file',
      'cert= and key= go together: a client certificate needs its private key',
      expect.stringMatching(/^insecure= must be true or false/),
    ]);
    expect(checkUrl('mqtts://h?clientId=')).toEqual([expect.stringMatching(/^clientId= is empty/)]);
  });
});
