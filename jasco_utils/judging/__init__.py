"""Stage 3, judging (notebooks/02_judging): prompt templates and their labels, parsing of judge answers, the judge runner."""
