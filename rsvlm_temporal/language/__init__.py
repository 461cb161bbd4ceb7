"""Stage 5, language: captions and answers from the evidence.

Question parsing (intent and slots), answer and caption composition, the verifier that lets
no unsupported number, date, class or place through, and the LLM head (transformers). It reads
only the evidence and the model's outputs, never pixels.
"""
