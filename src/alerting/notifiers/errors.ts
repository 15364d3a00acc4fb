import { CoalmineError } from '../../core/errors.js';

/** A receiver answered with a non-2xx status, or could not be reached. */
export class DeliveryError extends CoalmineError {
  /** HTTP status, when the receiver answered at all. */
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
}

/** An SMTP server refused a command with a 4xx (transient) or 5xx (permanent) reply. */
export class SmtpError extends CoalmineError {
  readonly code: number;
  readonly command: string;
  constructor(command: string, code: number, reply: string, options?: { cause?: unknown }) {
    super(`SMTP ${command} refused: ${code} ${reply}`, options);
    this.code = code;
    this.command = command;
  }
}
