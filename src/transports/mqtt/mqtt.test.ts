import { describe, expect, it } from 'vitest';
import { TransportError } from '../transport.js';
import { parseMqttUrl } from './index.js';

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
    });
    expect(a.clientId).toMatch(/^coalmine-[0-9a-f]{8}$/);
    expect(a.clientId).not.toBe(b.clientId);
  });

  it('takes credentials out of the URL it hands to mqtt.js', () => {
    const cfg = parseMqttUrl('mqtts://al%40ice:s%2Fcret@broker:8883?qos=2&clientId=me&version=4', 'eu-1');
    expect(cfg).toMatchObject({ url: 'mqtts://broker:8883', username: 'al@ice', password: 's/cret' });
    expect(cfg).toMatchObject({ qos: 2, clientId: 'me', version: 4 });
  });

  it('gives a persistent session a stable client id from the client name', () => {
    expect(parseMqttUrl('mqtt://h?clean=false', 'eu-1').clientId).toBe('coalmine-eu-1');
  });

  it('rejects what it does not understand, naming the option and hiding the password', () => {
    for (const [url, why] of [
      ['mqtt://u:secret@h?qos=3', /qos/],
      ['mqtt://u:secret@h?version=3', /version/],
      ['mqtt://u:secret@h?clean=maybe', /clean/],
      ['mqtt://u:secret@h?clean=false', /clientId/],
      ['mqtt://u:secret@h?Qos=1', /unknown option Qos/],
    ] as const) {
      let err: unknown;
      try {
        parseMqttUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TransportError);
      expect((err as Error).message).toMatch(why);
      expect((err as Error).message).not.toContain('secret');
    }
  });
});
