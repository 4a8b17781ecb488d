"""The spatial query service on raw DDS: what the rclpy node does, for machines without ROS.

A ROS 2 (rmw_cyclonedds or any DDS-based rmw) graph on the same domain sees the same topics: `~/query`,
`~/answer`, `~/markers`, ... of node `<namespace>/<node_name>`, the camera topics of the configuration.

    transport = DdsTransport(config, domain_id=0)
    service = SpatialQueryService(engine, config, transport.publish)
    service.start()
    transport.spin(service.handlers(), service.diagnostics, stop_event)

Cyclone DDS reads its configuration from CYCLONEDDS_URI when the first participant of a domain is created;
`loopback_config()` is one that keeps every packet on 127.0.0.1 (no multicast, unicast discovery to
localhost) with large fragments, which loopback allows.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cyclonedds.core import InstanceState, Policy, Qos, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.dds.idl import idl_type, to_message
from sr_real_core.ros.service import OUTPUT_ENDPOINTS, Endpoint, input_endpoints

TAKE_BATCH = 32  # samples taken per reader per wake-up; readers keep at most their history depth anyway
WAIT_S = 0.05  # longest sleep of the loop: bounds the delay of a stop request and of diagnostics


def loopback_config(max_participants: int = 20) -> str:
    """A CycloneDDS configuration that confines traffic to 127.0.0.1: for tests and single-machine use."""
    return ("<CycloneDDS><Domain Id=\"any\"><General>"
            "<Interfaces><NetworkInterface address=\"127.0.0.1\"/></Interfaces>"
            "<AllowMulticast>false</AllowMulticast>"
            "<MaxMessageSize>65500B</MaxMessageSize><FragmentSize>62000B</FragmentSize></General>"
            "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
            f"<MaxAutoParticipantIndex>{max_participants}</MaxAutoParticipantIndex>"
            "<Peers><Peer address=\"127.0.0.1\"/></Peers></Discovery>"
            "</Domain></CycloneDDS>")


def dds_topic(name: str, namespace: str = "/", node_name: str = "spatial_query_node") -> str:
    """The DDS topic of a ROS 2 topic name: `~/x` -> `rt/<ns>/<node>/x`, `x` -> `rt/<ns>/x`, `/x` -> `rt/x`."""
    namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name.startswith("~/"):
        name = f"{namespace}/{node_name}/{name[2:]}"
    elif not name.startswith("/"):
        name = f"{namespace}/{name}"
    return "rt" + name


def endpoint_qos(endpoint: Endpoint, config: SpatialQueryConfig) -> Qos:
    """ROS 2 QoS profiles in DDS terms: sensor data (keep last, best effort by default) or the default
    (reliable, keep last 10); XCDR1 always, as rmw uses."""
    representation = Policy.DataRepresentation(use_cdrv0_representation=True)
    if endpoint.sensor:
        reliability = (Policy.Reliability.Reliable(duration(milliseconds=100))
                       if config.sensor_reliability == "reliable" else Policy.Reliability.BestEffort)
        return Qos(reliability, Policy.History.KeepLast(config.sensor_queue_depth), Policy.Durability.Volatile,
                   representation)
    return Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10),
               Policy.Durability.Volatile, representation)


class DdsEndpoints:
    """One domain participant with writers and readers for endpoints of the node: ROS names, QoS and types.
    The node writes its outputs and reads its inputs (`DdsTransport`); its clients do the reverse."""

    def __init__(self, config: SpatialQueryConfig, writes: Iterable[Endpoint], reads: Iterable[Endpoint], *,
                 domain_id: int, namespace: str, node_name: str):
        self.participant = DomainParticipant(domain_id)
        self.writers: dict[str, DataWriter] = {}
        self.readers: dict[str, DataReader] = {}
        self._msgtypes: dict[str, str] = {}
        for endpoint in writes:
            self.writers[endpoint.key] = DataWriter(self.participant, self._topic(endpoint, namespace, node_name),
                                                    qos=endpoint_qos(endpoint, config))
            self._msgtypes[endpoint.key] = endpoint.msgtype
        for endpoint in reads:
            self.readers[endpoint.key] = DataReader(self.participant, self._topic(endpoint, namespace, node_name),
                                                    qos=endpoint_qos(endpoint, config))
        self._publish_lock = threading.Lock()  # cyclonedds's Python layer does not promise thread safety

    def _topic(self, endpoint: Endpoint, namespace: str, node_name: str) -> Topic:
        return Topic(self.participant, dds_topic(endpoint.topic, namespace, node_name), idl_type(endpoint.msgtype))

    def publish(self, key: str, message: Mapping[str, Any]) -> None:
        """Write to a writer's topic a message given as a ROS message dict. Thread-safe."""
        sample = to_message(self._msgtypes[key], message)
        with self._publish_lock:
            self.writers[key].write(sample)

    def take(self, key: str, count: int = TAKE_BATCH) -> list[Any]:
        """Up to `count` available samples of a reader, oldest first (dispose notifications left out)."""
        reader = self.readers[key]
        return [sample for sample in reader.take(N=count) if isinstance(sample, reader.topic.data_type)]

    def waitset(self, keys: Iterable[str]) -> WaitSet:
        """A wait set that wakes when any of these readers has data."""
        waitset = WaitSet(self.participant)
        for key in keys:
            waitset.attach(ReadCondition(self.readers[key], SampleState.Any | ViewState.Any | InstanceState.Any))
        return waitset


class DdsTransport(DdsEndpoints):
    """The node's side: readers for `input_endpoints(config)`, writers for `OUTPUT_ENDPOINTS`."""

    def __init__(self, config: SpatialQueryConfig, *, domain_id: int = 0, namespace: str = "/",
                 node_name: str = "spatial_query_node"):
        super().__init__(config, OUTPUT_ENDPOINTS, input_endpoints(config), domain_id=domain_id,
                         namespace=namespace, node_name=node_name)
        self._waitset = self.waitset(self.readers)

    def spin(self, handlers: Mapping[str, Callable[[Any], None]], diagnostics: Callable[[], Mapping[str, Any]],
             stop: threading.Event, diagnostics_period_s: float = 1.0,
             on_error: Callable[[str, BaseException], None] | None = None) -> None:
        """Deliver input samples to `handlers` (by endpoint key) and publish `diagnostics()` periodically,
        until `stop` is set. A sample that cannot be read or handled goes to `on_error(key, error)` (default:
        logged) and the loop goes on: no message stops the node."""
        on_error = on_error or _log_failure
        next_report = time.monotonic()
        while not stop.is_set():
            self._waitset.wait(duration(seconds=WAIT_S))
            for key in self.readers:
                for sample in self._take_guarded(key, on_error):
                    try:
                        handlers[key](sample)
                    except Exception as error:  # noqa: BLE001 - see the docstring
                        on_error(key, error)
            if time.monotonic() >= next_report:
                try:
                    self.publish("diagnostics", diagnostics())
                except Exception as error:  # noqa: BLE001 - see the docstring
                    on_error("diagnostics", error)
                next_report = time.monotonic() + diagnostics_period_s

    def _take_guarded(self, key: str, on_error: Callable[[str, BaseException], None]) -> list[Any]:
        try:
            return self.take(key)
        except Exception as error:  # noqa: BLE001 - e.g. a sample that does not deserialise
            on_error(key, error)
            return []


def _log_failure(key: str, error: BaseException) -> None:
    logging.getLogger("sr_real.dds").warning(f"{key}: message failed: {type(error).__name__}: {error}")
