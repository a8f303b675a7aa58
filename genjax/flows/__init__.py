"""Normalizing flows and flow matching.

Discrete flows (``bijectors``, ``flow``): NICE, RealNVP, Glow, MAF, IAF and neural spline
flows over a standard normal base; continuous flows (``cnf``, FFJORD) and conditional flow
matching (``flow_matching``). ``forward`` maps base noise to data (the sampling
direction), ``inverse`` maps data to noise, and
``log_prob(x) = log N(inverse(x)) + log_det(inverse)``.
"""
