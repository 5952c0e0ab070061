"""Models: finding and loading a model directory, the local ONNX engine and the remote backend."""
