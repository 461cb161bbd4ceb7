"""Stage 5, language: captions and answers from the evidence.

Question parsing (intent and slots), answer and caption composition, the verifier that lets
no unsupported number, date, class or place through, and the LLM head (transformers). It reads
only the evidence and the model's outputs, never pixels.

Entry points: :func:`rsvlm_temporal.language.ask.ask` (a question) and
:func:`rsvlm_temporal.language.ask.describe` (a caption), both verified against the evidence.
"""
