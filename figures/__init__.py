"""Figures and tables: metrics over training, latent pictures and animations, exact
posteriors, the adversary's error, sweeps, and the Markdown tables."""
