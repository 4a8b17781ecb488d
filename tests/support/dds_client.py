"""The other side of the spatial query node on DDS: a camera and a questioner that listens to the answers.

For robots or scripts without ROS, and for the tests and benchmarks: it writes the node's inputs
(`input_endpoints(config)`: image, depth, camera_info, query, ...) and reads its outputs
(`OUTPUT_ENDPOINTS`), all as ROS message dicts / IDL messages with the ROS field names.

    client = DdsNodeClient(config, domain_id=0)
    client.wait_for_node(timeout_s=10)
    client.publish("camera_info", {...}); client.publish("image", image_dict(rgb, header))
    client.publish("query", {"data": "How far is the chair?"})
    answer = client.next("answer", timeout_s=60)
"""
from __future__ import annotations

import time
from typing import Any

from cyclonedds.util import duration

from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.transport import DdsEndpoints
from sr_real_core.ros.service import OUTPUT_ENDPOINTS, input_endpoints


class DdsNodeClient(DdsEndpoints):
    def __init__(self, config: SpatialQueryConfig, *, domain_id: int = 0, namespace: str = "/",
                 node_name: str = "spatial_query_node"):
        super().__init__(config, input_endpoints(config), OUTPUT_ENDPOINTS, domain_id=domain_id,
                         namespace=namespace, node_name=node_name)
        self._waitsets = {key: self.waitset([key]) for key in self.readers}

    def wait_for_node(self, timeout_s: float) -> bool:
        """Whether, within `timeout_s`, every writer found a reader and every reader a writer (the node is up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (all(writer.get_matched_subscriptions() for writer in self.writers.values())
                    and all(reader.get_matched_publications() for reader in self.readers.values())):
                return True
            time.sleep(0.05)
        return False

    def next(self, key: str, timeout_s: float) -> Any | None:
        """The next sample of an output of the node (`OUTPUT_ENDPOINTS` key), or None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not (samples := self.take(key, count=1)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._waitsets[key].wait(duration(seconds=min(remaining, 0.1)))
        return samples[0]
