"""The network families: stateful GRU/LSTM networks (``gru``), causal dilated convolutions
(``tcn``) and a windowed bidirectional GRU with attention (``window_attn``), trained in PyTorch,
served one step at a time.

Training (``train``, ``block_family``, ``nets``, ``block_nets``, ``losses``, ``augment``) needs
torch; the ONNX builders (``export``, ``export_blocks``) need onnx. What a solution imports at
inference (``serving``, ``spec``, ``block_spec``, ``runtime_numpy``, ``runtime_blocks``,
``runtime_onnx``) needs only numpy and onnxruntime, so this package file imports nothing: the
packager vendors it into every zip.
"""
