// Receivers the notifier tests start on 127.0.0.1:0. Not a test file itself (no .test.ts suffix).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertNotification } from './types.js';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface HttpReceiver {
  url: string;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

/** An HTTP server that records each request and answers with what `answer` returns (status, or hang). */
export async function startHttpReceiver(
  answer: (req: ReceivedRequest, index: number) => number | 'hang' = () => 200,
): Promise<HttpReceiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(r);
      const status = answer(r, requests.length - 1);
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}

export function sampleAlert(overrides: Partial<AlertNotification> = {}): AlertNotification {
  return {
    rule: 'p95-latency-high',
    state: 'firing',
    value: 123.456,
    summary: 'P95 latency to eu-west above 100 ms in 2 of the last 3 datapoints',
    startsAt: Date.UTC(2026, 10, 23, 12, 0, 0),
    labels: { target: 'eu-west', kind: 'http' },
    annotations: { threshold: '100 ms' },
    dashboardUrl: 'http://coalmine.example/#/targets/eu-west',
    ...overrides,
  };
}
