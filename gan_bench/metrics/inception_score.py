"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x)
over the split. Protocol: 50k fakes in 10 consecutive splits, mean and std over splits, on the
TF-Inception `logits_unbiased` (1008 classes). Computed in float64 from logits via log_softmax,
so classes with p(y|x) ~ 0 contribute exactly 0 instead of 0 * log 0."""

import torch


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    z = torch.as_tensor(logits).to(torch.float64)
    n = len(z)
    if n < splits:
        raise ValueError(f"need at least {splits} samples for {splits} splits, got {n}")
    scores = []
    for i in range(splits):
        logp = torch.log_softmax(z[i * n // splits:(i + 1) * n // splits], dim=1)
        log_py = torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(len(logp)), dtype=torch.float64))
        kl = (logp.exp() * (logp - log_py)).sum(1).mean()
        scores.append(kl.exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(correction=0))  # std over splits, like np.std
