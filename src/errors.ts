/**
 * The error types every layer throws. This file imports nothing so that any layer may use it.
 *
 * Every message says what was wrong, what was expected, and what to do about it.
 */

/** Base class of every error Octet throws on purpose; `code` is stable for programs to test. */
export class OctetError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A format name that does not name a preset or a valid `eXmY` split. */
export class UnknownFormatError extends OctetError {
  constructor(message: string) {
    super('UNKNOWN_FORMAT', message);
  }
}

/** A format record whose fields are inconsistent or outside what Octet can represent. */
export class InvalidFormatError extends OctetError {
  constructor(message: string) {
    super('INVALID_FORMAT', message);
  }
}

/** An argument of the wrong kind, shape or range. */
export class InvalidArgumentError extends OctetError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * A setting of a run (a training config field, or an option such as resume) that cannot be used as
 * given; `setting` names it as the library does, so the command line can name its flag.
 */
export class SettingError extends InvalidArgumentError {
  constructor(readonly setting: string, message: string) {
    super(message);
  }
}

/**
 * NaN or Inf where values must be finite: in input data, in batch statistics (which would corrupt
 * a batch norm's running statistics for good), or in a training run's loss or parameters.
 */
export class NonFiniteError extends OctetError {
  constructor(message: string) {
    super('NON_FINITE', message);
  }
}

/** A name (model, recipe, data set, ...) that is not one of the known choices. */
export class UnknownNameError extends OctetError {
  constructor(message: string) {
    super('UNKNOWN_NAME', message);
  }
}
