"""The multitask piano transcription study of Kelz, Böck & Widmer (notebooks 06-08): MAESTRO's layout (`maestro`),
synthetic performances (`performance`), the semi-logarithmic spectrogram (`spectrogram`), the five frame targets
(`targets`), context-window data (`data`), the hard-sharing and cross-stitch networks (`networks`, `cross_stitch`),
training and grids (`training`), metrics, the paper's tables (`paper_tables`) and figures (`figures`).  It imports
only `mtlnb.core` and `mtlnb.profiles`."""
