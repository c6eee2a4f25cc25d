/**
 * The H200 FP8 GEMM measurements of shared/hopper/ (its README gives the layout): each case's
 * operand codes and float32 outputs. Found at ../shared/hopper from the repository root, or at
 * OCTET_HOPPER_DATA; null where neither holds them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export interface HopperCase {
  name: string;
  aFormat: string;
  bFormat: string;
  dist: string;
  m: number;
  k: number;
  n: number;
  fastAccum: boolean;
  scaleA: number;
  scaleB: number;
  a: Uint8Array;
  b: Uint8Array;
  c: Float32Array;
}

/**
 * The manifests print scales with 6 significant digits (measure.py's %g); two of the measured
 * scales had more: 2^-10 (printed 0.000976562) and pi (3.14159). The outputs match only with the
 * full values, as the float32 scales torch was given.
 */
const PRINTED_SCALES = new Map<number, number>([[0.000976562, 2 ** -10], [3.14159, Math.fround(Math.PI)]]);

export function hopperDataDir(): string | null {
  const dir = process.env.OCTET_HOPPER_DATA ?? resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'hopper');
  return existsSync(join(dir, 'README.md')) ? dir : null;
}

export function hopperCases(dir: string, set: string): HopperCase[] {
  type Entry = Omit<HopperCase, 'a' | 'b' | 'c' | 'scaleA' | 'scaleB'> & { scaleA?: number; scaleB?: number; a: [number, number]; b: [number, number]; c: [number, number] };
  const manifest = JSON.parse(readFileSync(join(dir, `${set}.json`), 'utf8')) as { cases: Entry[] };
  const blob = gunzipSync(readFileSync(join(dir, `${set}.bin.gz`)));
  return manifest.cases.map((c) => {
    const c32 = new Float32Array(c.c[1] / 4);
    for (let i = 0; i < c32.length; i++) c32[i] = blob.readFloatLE(c.c[0] + 4 * i);
    const scales = { scaleA: PRINTED_SCALES.get(c.scaleA ?? 1) ?? c.scaleA ?? 1, scaleB: PRINTED_SCALES.get(c.scaleB ?? 1) ?? c.scaleB ?? 1 };
    return { ...c, ...scales, a: new Uint8Array(blob.subarray(c.a[0], c.a[0] + c.a[1])), b: new Uint8Array(blob.subarray(c.b[0], c.b[0] + c.b[1])), c: c32 };
  });
}
