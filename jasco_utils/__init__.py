"""jasco: the JASCO benchmark (Joint Audio-Speech Co-Reasoning) end to end.

Implements the protocol of Wang et al., "What Are They Doing? Joint Audio-Speech
Co-Reasoning" (arXiv:2409.14526): the *What Are They Doing* dataset (80 clips), the
640-row inference manifest (80 clips x 8 instructions), the LLM-judge prompts, the
parsing of judge outputs, and the paper's metrics (Best-Mean and modality dependence).
"""

__version__ = "0.1.0"
