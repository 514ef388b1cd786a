"""Networks: the gradient residual block, the EDSR family, the MLP, registry and weights."""
