import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleService, type ExampleService } from './example-service.js';

describe('example target service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coalmine-target-'));
  const notesFile = join(dir, 'notes.txt');
  let service: ExampleService;
  beforeAll(async () => {
    service = await startExampleService({
      host: '127.0.0.1',
      port: 0,
      notesFile,
      maxNotesBytes: 4000,
      maxNoteBytes: 100,
    });
  });
  afterAll(() => service.close());

  it('answers /health', async () => {
    const res = await fetch(`${service.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('appends each note as one line', async () => {
    expect((await fetch(`${service.url}/notes?content=first%0Aline`)).status).toBe(201);
    expect((await fetch(`${service.url}/notes?content=second`, { method: 'POST' })).status).toBe(201);
    const lines = readFileSync(notesFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT.* first line$/);
    expect(lines[1]).toMatch(/ second$/);
  });

  it('rejects empty and oversized notes and unknown paths', async () => {
    expect((await fetch(`${service.url}/notes`)).status).toBe(400);
    expect((await fetch(`${service.url}/notes?content=${'x'.repeat(101)}`)).status).toBe(413);
    expect((await fetch(`${service.url}/nope`)).status).toBe(404);
    expect((await fetch(`${service.url}/notes?content=a`, { method: 'DELETE' })).status).toBe(405);
  });

  it('keeps the notes file under its bound, dropping the oldest lines', async () => {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${service.url}/notes?content=note-${String(i).padStart(3, '0')}`),
      ),
    );
    expect(statSync(notesFile).size).toBeLessThanOrEqual(4000);
    const text = readFileSync(notesFile, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.trim().split('\n')) expect(line).toMatch(/^\S+ (note-\d{3}|first line|second)$/);
  });
});
