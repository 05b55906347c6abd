"""The Camera-PrIMuS study: OMR and audio-to-score CRNNs trained with CTC, fused late through word graphs (the
baseline of Alfaro-Contreras et al. 2023), and GradSPSA's A2S network (the 2026 thesis); notebooks 01-05.

Its stages, in the order the data flows: `notation` (the semantic and agnostic encodings and the music they
describe) -> `corpus` (the real archive's reader, the synthetic corpus, features) -> `networks` (CRNNs, losses, CTC
training runs) -> `decoding` (symbol n-gram LM, CTC word graphs) -> `fusion` (the five late-fusion methods and the
pipeline that runs them) -> `evaluation` (scenarios, cross-validation, tables, sim-to-real).  `study` says where a
profile's files live, `metrics` holds the symbol error rate, `figures` every figure of notebooks 01-05."""
