"""Training: sparsity-inducing optimizers, losses, the training loop and the torch<->NIR frontend."""
