"""Stage 3, model: the temporal CLIP.

Pretrained remote-sensing towers (Presto, Galileo nano) or any open_clip image tower per date,
temporal embeddings of the acquisition dates and a temporal transformer, aligned with a text
tower (MiniLM, or open_clip's); heads for change masks, change dates, zero-shot and few-shot
labels and text search over the series. Laid out as open_clip is: architecture configs as
JSON, one factory, a registry of weights with sha256, training code apart (``rsvlm_temporal.train``).
torch is imported only when a model is used.
"""
