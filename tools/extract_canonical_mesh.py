"""Extract MediaPipe's canonical face mesh (468 vertices, UVs, 898 triangles) into the package.

Python's mediapipe wheel ships only the mesh's 2556 edges; the triangles live in the npm package
``@mediapipe/face_mesh@0.4.1657299874`` (Apache-2.0) inside its packed assets, as the
``geometry_pipeline_metadata_landmarks.binarypb`` protobuf. Run once, offline after ``npm pack``:

    npm pack @mediapipe/face_mesh@0.4.1657299874 && tar xzf mediapipe-face_mesh-*.tgz
    python tools/extract_canonical_mesh.py package/face_mesh_solution_packed_assets.data
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2

# Byte range of geometry_pipeline_metadata_landmarks.binarypb inside the packed assets.
START, END = 3737848, 3757224
OUT = Path(__file__).resolve().parents[1] / "facetalk" / "face" / "data" / "canonical_mesh.npz"


def main(packed_assets: str) -> None:
    blob = Path(packed_assets).read_bytes()[START:END]
    meta = geometry_pipeline_metadata_pb2.GeometryPipelineMetadata()
    meta.ParseFromString(blob)
    mesh = meta.canonical_mesh
    vertex = np.asarray(mesh.vertex_buffer, np.float32).reshape(-1, 5)
    triangles = np.asarray(mesh.index_buffer, np.int16).reshape(-1, 3)
    assert vertex.shape == (468, 5) and triangles.shape == (898, 3)
    np.savez_compressed(OUT, vertices=vertex[:, :3], uv=vertex[:, 3:], triangles=triangles)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
