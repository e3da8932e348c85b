/**
 * audiosocket: Asterisk AudioSocket server, simulated Asterisk client and audio tools.
 * @packageDocumentation
 */
export {};
