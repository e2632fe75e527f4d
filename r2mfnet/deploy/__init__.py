"""Deployment: a trained checkpoint as an ONNX file that runs without PyTorch.

:mod:`r2mfnet.deploy.onnx_export` writes the file (whole model, its preprocessing contract in the
metadata, checked against PyTorch with ONNX Runtime before it is written). Running it is
:class:`r2mfnet.inference.onnx_predictor.OnnxPredictor`; DICOM Segmentation output is
:mod:`r2mfnet.data.dicom_seg`. Needs the ``deploy`` extra (``onnx``, ``onnxruntime``,
``highdicom``); nothing is imported here so that the core install never needs it.
"""
