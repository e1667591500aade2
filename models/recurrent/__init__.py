"""The recurrent family: stateful GRU/LSTM networks trained in PyTorch, served one step at a time.

Training (``train``, ``nets``, ``losses``, ``augment``) needs torch. What a solution
imports at inference (``spec``, ``runtime_numpy``, ``runtime_onnx``) needs only numpy and
onnxruntime, so this package file imports nothing: the packager vendors it into every zip.
"""
