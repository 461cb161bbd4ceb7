"""Trainers (apart from the models, as torchgeo does): the temporal CLIP trained on the synthetic
scene generator (``rsvlm train``) and its evaluation on held-out seeds (``rsvlm eval``)."""
