"""ONNX target: the contract as an ONNX model (export.py), run by onnxruntime (target.py).
onnx and onnxruntime are imported only when the target compiles or runs."""

from neurocompile.targets.onnx.target import OnnxOptions, OnnxTarget

__all__ = ["OnnxOptions", "OnnxTarget"]
