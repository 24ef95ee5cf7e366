"""Stage 2, ALLM answers (notebooks/01_inference): audio LLMs, imported answers, the cascade baseline, audio ablations."""
