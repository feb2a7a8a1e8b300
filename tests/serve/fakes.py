"""What the Ray Serve tests put in place of `serving.llm_server.LLMServer` (no engine).

`LLMDeployment` builds its server from the class it is given (`llm_server_cls`); a fake
defines `chat` and keeps the rest of this interface.
"""

from __future__ import annotations

import contextlib


class FakeLLMServerBase:
    def __init__(self, model_key, config, served_names):
        self.model_key = model_key
        self.served_names = served_names
        self.adapters = None

    async def start(self):
        pass

    async def check_health(self):
        pass

    def close(self):
        pass

    def metrics_text(self):
        return ""

    async def chat(self, request, prompt=None):
        raise NotImplementedError
        yield  # an async generator, as LLMServer.chat is


def start_local_ray(**kwargs) -> None:
    """`ray.init` of a fresh local cluster in the test process. The third cluster one
    pytest process starts after shutting two down once failed CI's node start-up check
    (the raylet did not register with the new GCS within Ray's fixed 30 s while gRPC
    threads of the previous cluster were still winding down); start once more then."""
    import time

    import ray

    try:
        ray.init(**kwargs)
    except Exception as err:  # Ray raises a bare Exception for this
        if "timed out during startup" not in str(err):
            raise
        ray.shutdown()
        time.sleep(5)
        ray.init(**kwargs)


@contextlib.contextmanager
def serve_app(config, llm_server_cls: type, name: str, data_dir: str):
    """The whole app of `config` on a fresh local Ray cluster (4 logical CPUs, data in
    `data_dir`), with `llm_server_cls` as its engine; yields its URL, shuts all down."""
    import os

    import ray
    from ray import serve

    from lorag_core.ports import free_port
    from serving.app import build_from_config

    port = free_port()
    os.environ["LORAG_DATA_DIR"] = data_dir
    start_local_ray(num_cpus=4, include_dashboard=False, log_to_driver=False,
                    runtime_env={"env_vars": {"LORAG_DATA_DIR": data_dir}})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_from_config(config, llm_server_cls=llm_server_cls), name=name,
                  route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        os.environ.pop("LORAG_DATA_DIR", None)
