/** Errors of the data layer: which file, what was expected, and how to get the data. */
import { OctetError } from '../errors.js';

export class DataFileError extends OctetError {
  readonly file: string;

  constructor(file: string, message: string) {
    super('DATA_FILE', `${file}: ${message}`);
    this.file = file;
  }
}
