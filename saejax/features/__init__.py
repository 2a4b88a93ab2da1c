"""Features you can read: each latent's frequency, activations, top contexts and logit effects
(``collect``), drawn as one static page (``page``)."""
