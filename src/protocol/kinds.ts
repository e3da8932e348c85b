/**
 * AudioSocket message kinds (`include/asterisk/res_audiosocket.h` `enum ast_audiosocket_msg_kind`,
 * docs/protocol.md#kinds) and their audio sample rates.
 */

/** Message kinds on the wire. */
export const Kind = {
  /** Server → Asterisk: end the session. Asterisk never sends it (it closes the socket). */
  HANGUP: 0x00,
  /** Asterisk → server, first message: 16 raw UUID bytes. */
  UUID: 0x01,
  /** Asterisk → server: one ASCII DTMF digit, sent at digit end (Asterisk 20.14/21.9/22.4/23.0+). */
  DTMF: 0x03,
  /** Signed 16-bit little-endian mono, 8 kHz. The channel driver also uses it for non-slin codecs. */
  SLIN: 0x10,
  SLIN12: 0x11,
  SLIN16: 0x12,
  SLIN24: 0x13,
  SLIN32: 0x14,
  SLIN44: 0x15,
  SLIN48: 0x16,
  SLIN96: 0x17,
  SLIN192: 0x18,
  /** Defined by the protocol, never sent by any Asterisk version; fatal if we send it. */
  ERROR: 0xff,
} as const;

/** Any of the audio kinds 0x10-0x18. */
export type AudioKind = 0x10 | 0x11 | 0x12 | 0x13 | 0x14 | 0x15 | 0x16 | 0x17 | 0x18;

/** Sample rate of each audio kind, indexed by `kind - 0x10`. */
const RATES = [8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000] as const;

/** True for 0x10-0x18. */
export function isAudioKind(kind: number): kind is AudioKind {
  return Number.isInteger(kind) && kind >= 0x10 && kind <= 0x18;
}

/** Sample rate in Hz of an audio kind, or `undefined` if `kind` is not an audio kind. */
export function sampleRateOfKind(kind: number): number | undefined {
  return isAudioKind(kind) ? RATES[kind - 0x10] : undefined;
}

/** The audio kind that carries slin at `sampleRate`, or `undefined` if there is none. */
export function audioKindForRate(sampleRate: number): AudioKind | undefined {
  const i = RATES.indexOf(sampleRate as (typeof RATES)[number]);
  return i < 0 ? undefined : ((0x10 + i) as AudioKind);
}

/** Human-readable name of a kind, e.g. `0x12 (slin16)`. */
export function kindName(kind: number): string {
  const hex = `0x${kind.toString(16).padStart(2, '0')}`;
  switch (kind) {
    case Kind.HANGUP:
      return `${hex} (hangup)`;
    case Kind.UUID:
      return `${hex} (uuid)`;
    case Kind.DTMF:
      return `${hex} (dtmf)`;
    case Kind.ERROR:
      return `${hex} (error)`;
    default: {
      const rate = sampleRateOfKind(kind);
      if (rate === undefined) return `${hex} (unknown)`;
      return `${hex} (${rate === 8000 ? 'slin' : `slin${rate === 44100 ? 44 : rate / 1000}`})`;
    }
  }
}

/** Largest payload the 16-bit length field can describe. */
export const MAX_PAYLOAD = 0xffff;

/** Size of a message header: kind (1) + big-endian length (2). */
export const HEADER_SIZE = 3;
