"""How a model is judged: log p(x) by quadrature (2-D) or annealed importance sampling, the true
ELBO (exact log q, or a nearest-neighbour entropy for an implicit q), the exact posterior, and
the adversary's error against a histogram of q or a known q. final.py runs a trained run's final
evaluation from these parts."""
