"""Camera-PrIMuS's symbol encodings and the music they describe: durations, pitches, keys, meters (`music`), the
semantic encoding and its MIDI and Plaine & Easie conversions (`semantic`), the agnostic encoding (`agnostic`)."""
