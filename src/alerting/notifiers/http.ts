import { DeliveryError } from './errors.js';

/** POSTs a JSON body (already serialized, so a signature can cover the exact bytes); throws unless 2xx. */
export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal,
    });
  } catch (err) {
    throw new DeliveryError(`POST ${url} failed: ${(err as Error).message}`, { cause: err });
  }
  // Read the body so the connection can be reused, and keep a little of it for the error.
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    throw new DeliveryError(`POST ${url} answered ${res.status}: ${text.slice(0, 200)}`, {
      status: res.status,
    });
  }
}
