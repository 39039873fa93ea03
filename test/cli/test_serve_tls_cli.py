"""``spatial-mllm-serve --tls-cert FILE --tls-key FILE``: the server speaks https (uvicorn's TLS
through Serve's HTTP options), a robot with an ``https://`` endpoint that trusts the
certificate is answered, a plain-http client gets nothing. A self-signed certificate for
127.0.0.1 is made with ``openssl`` (skipped without it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from testkit.cli import run_command
from testkit.serve import start_serve

from spatial_mllm_ros.answering.errors import RemoteModelError
from spatial_mllm_ros.answering.remote import RemoteAnswerer, RemoteConfig
from spatial_mllm_ros.core.rgbd_dir import load_rgbd_dir

PORT = 8003
TOKEN = "tls-test-token"


def _certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's certificate)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    res = run_command(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                       str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                       "-addext", "subjectAltName=IP:127.0.0.1"])
    assert res.returncode == 0, res.describe()
    return cert, key


def test_tls_server_answers_https_clients_only(shelf: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("SPATIAL_MLLM_TINY_CHECKPOINT"):
        pytest.skip("SPATIAL_MLLM_TINY_CHECKPOINT is not set (make test sets it)")
    cert, key = _certificate(tmp_path)
    server = start_serve(["spatial-mllm-serve", "--config", "cpu_tiny", "-p",
                          "model.max_pixels:=15680", "--port", str(PORT), "--tls-cert",
                          str(cert), "--tls-key", str(key)], PORT, TOKEN)
    try:
        assert f"https://127.0.0.1:{PORT}" in server.output()
        monkeypatch.setenv("SPATIAL_MLLM_TOKEN", TOKEN)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the robot trusts the certificate
        frames = load_rgbd_dir(shelf)[:4]
        secure = RemoteAnswerer(RemoteConfig(endpoint=f"https://127.0.0.1:{PORT}"))
        assert secure.answer(frames, "How many boxes are there?", 2).num_new_tokens == 2
        plain = RemoteAnswerer(RemoteConfig(endpoint=f"http://127.0.0.1:{PORT}"))
        with pytest.raises(RemoteModelError, match="unreachable"):
            plain.answer(frames, "How many boxes are there?", 2)
    finally:
        code = server.stop()
    assert code == 0, server.output()
