"""The central server: FastAPI app, SQLAlchemy models, migrations, services and web UI.

Must import without OpenCV or ONNX Runtime.
"""
