"""Training: sparsity-inducing optimizers, losses, the training loop and the torch<->NIR frontend."""

from neurocompile.callable_module import make_callable  # noqa: E402

make_callable(__name__, "neurocompile.api:train")  # neurocompile.train(out_dir, **options)
