"""deploy/cluster: the ClickHouse and Keeper XML configs against each other and against the compose file."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from tests.deploy.deployfiles import (
    CLUSTER_COMPOSE,
    COLLECTOR_CONFIG_TARGET,
    exposed_ports,
    image_name,
    load_compose,
    load_yaml_file,
    mounted_file,
    parse_xml,
    xml_text,
)

CLUSTER_DIR = CLUSTER_COMPOSE.parent
CLUSTER_XML = CLUSTER_DIR / "clickhouse" / "cluster.xml"
CLUSTER_NAME = "genai"
SHARDS, REPLICAS = 2, 2
KEEPER_CONFIG_TARGET = "/etc/clickhouse-keeper/keeper_config.xml"
NODE_CONFIG_TARGET = "/etc/clickhouse-server/config.d/node.xml"
SHARED_CONFIG_TARGET = "/etc/clickhouse-server/config.d/cluster.xml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = load_compose(CLUSTER_COMPOSE)["services"]
    return services


def _by_image(image: str) -> dict[str, Any]:
    return {name: s for name, s in _services().items() if image_name(s) == image}


def _cluster() -> ET.Element:
    remote = parse_xml(CLUSTER_XML).find("remote_servers")
    assert remote is not None and [c.tag for c in remote] == [CLUSTER_NAME]
    return remote[0]


def _shards() -> list[list[str]]:
    """Replica hosts per shard, in order."""
    return [[xml_text(r, "host") for r in shard.iterfind("replica")] for shard in _cluster().iterfind("shard")]


def test_cluster_has_two_shards_of_two_replicas_on_distinct_compose_services() -> None:
    shards = _shards()
    assert [len(replicas) for replicas in shards] == [REPLICAS] * SHARDS
    hosts = [host for replicas in shards for host in replicas]
    assert len(set(hosts)) == len(hosts)
    servers = _by_image("clickhouse/clickhouse-server")
    assert set(hosts) == set(servers)
    for shard in _cluster().iterfind("shard"):
        assert xml_text(shard, "internal_replication") == "true"
        for replica in shard.iterfind("replica"):
            host, port = xml_text(replica, "host"), int(xml_text(replica, "port"))
            assert port in exposed_ports(servers[host]), f"{host} does not expose {port}"


def test_each_node_mounts_the_shared_config_and_macros_matching_its_place() -> None:
    place = {host: (shard, replica) for shard, hosts in enumerate(_shards(), 1) for replica, host in enumerate(hosts)}
    for name, service in _by_image("clickhouse/clickhouse-server").items():
        assert service["hostname"] == name
        assert mounted_file(CLUSTER_COMPOSE, service, SHARED_CONFIG_TARGET) == CLUSTER_XML
        node_file = mounted_file(CLUSTER_COMPOSE, service, NODE_CONFIG_TARGET)
        assert node_file.stem == name, f"{name} mounts {node_file.name}"
        node = parse_xml(node_file)
        assert xml_text(node, "macros/cluster") == CLUSTER_NAME
        assert int(xml_text(node, "macros/shard")) == place[name][0], f"{name}: shard macro"
        assert xml_text(node, "macros/replica") == name
        assert xml_text(node, "interserver_http_host") == name
    # Replica names are unique within each shard (they name the replica's Keeper path).
    macros = [
        (xml_text(parse_xml(p), "macros/shard"), xml_text(parse_xml(p), "macros/replica"))
        for p in sorted((CLUSTER_DIR / "clickhouse").glob("ch-*.xml"))
    ]
    assert len(macros) == SHARDS * REPLICAS == len(set(macros))


def _keepers() -> dict[str, ET.Element]:
    configs: dict[str, ET.Element] = {}
    for name, service in _by_image("clickhouse/clickhouse-keeper").items():
        assert service["hostname"] == name
        configs[name] = parse_xml(mounted_file(CLUSTER_COMPOSE, service, KEEPER_CONFIG_TARGET))
    return configs


def _raft(config: ET.Element) -> list[tuple[int, str, int]]:
    return [
        (int(xml_text(s, "id")), xml_text(s, "hostname"), int(xml_text(s, "port")))
        for s in config.iterfind("keeper_server/raft_configuration/server")
    ]


def test_keeper_ensemble_is_three_nodes_with_one_raft_configuration() -> None:
    keepers = _keepers()
    assert len(keepers) == 3, "an odd ensemble: a majority survives one lost node"
    rafts = {name: _raft(config) for name, config in keepers.items()}
    first = next(iter(rafts.values()))
    assert all(raft == first for raft in rafts.values()), "raft_configuration differs between nodes"
    assert sorted(host for _, host, _ in first) == sorted(keepers)
    ids = set()
    services = _services()
    for name, config in keepers.items():
        own_id = int(xml_text(config, "keeper_server/server_id"))
        ids.add(own_id)
        entry = [(i, host, port) for i, host, port in first if i == own_id]
        assert entry and entry[0][1] == name, f"{name}: server_id {own_id} names another host in the raft list"
        assert entry[0][2] in exposed_ports(services[name])
        assert int(xml_text(config, "keeper_server/tcp_port")) in exposed_ports(services[name])
        # Everything but server_id is the same on every node.
        assert _without_server_id(config) == _without_server_id(next(iter(keepers.values())))
    assert len(ids) == len(keepers)


def _without_server_id(config: ET.Element) -> bytes:
    copy = ET.fromstring(ET.tostring(config))
    server = copy.find("keeper_server")
    assert server is not None
    own = server.find("server_id")
    assert own is not None
    server.remove(own)
    return ET.tostring(copy)


def test_clickhouse_nodes_use_every_keeper_on_its_client_port() -> None:
    keepers = _keepers()
    nodes = [(xml_text(n, "host"), int(xml_text(n, "port"))) for n in parse_xml(CLUSTER_XML).iterfind("zookeeper/node")]
    assert sorted(host for host, _ in nodes) == sorted(keepers)
    for host, port in nodes:
        assert port == int(xml_text(keepers[host], "keeper_server/tcp_port"))
    servers = _by_image("clickhouse/clickhouse-server")
    for name, service in servers.items():
        assert set(service["depends_on"]) == set(keepers), f"{name} starts before Keeper is up"
    assert xml_text(parse_xml(CLUSTER_XML), "distributed_ddl/path")


def test_credentials_in_xml_come_from_the_environment() -> None:
    servers = _by_image("clickhouse/clickhouse-server")
    for path in [CLUSTER_XML, *sorted((CLUSTER_DIR / "clickhouse").glob("ch-*.xml"))]:
        for element in parse_xml(path).iter():
            if element.tag in ("user", "password"):
                assert not (element.text or "").strip(), f"{path.name}: a literal <{element.tag}>"
                variable = element.get("from_env")
                assert variable, f"{path.name}: <{element.tag}> without from_env"
                for name, service in servers.items():
                    assert variable in service["environment"], f"{name} does not set {variable}"
    assert not re.search(r"<password>[^<]", CLUSTER_XML.read_text(encoding="utf-8"))


def test_collector_writes_to_a_cluster_node_named_like_the_remote_servers_entry() -> None:
    services = _services()
    collector = services["collector"]
    config = load_yaml_file(mounted_file(CLUSTER_COMPOSE, collector, COLLECTOR_CONFIG_TARGET))
    assert config["exporters"]["clickhouse"]["cluster_name"] == _cluster().tag
    assert set(collector["depends_on"]) == set(_by_image("clickhouse/clickhouse-server"))
    host = collector["environment"]["CLICKHOUSE_ENDPOINT"].split("//", 1)[1].split(":")[0]
    assert host in {h for replicas in _shards() for h in replicas}
