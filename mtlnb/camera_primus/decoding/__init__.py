"""Decoding: the symbol n-gram LM with Witten-Bell and modified Kneser-Ney smoothing (`ngram_lm`), the CTC
word-graph beam search (`search`), the word graphs and their read-offs, MBR and confusion networks (`lattice`), and
their on-disk cache (`lattice_store`)."""
