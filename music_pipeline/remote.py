"""A running Dagster webserver, spoken to through its GraphQL API (used by `music-pipeline add`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class RemoteError(RuntimeError):
    pass


class DagsterRemote:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._repository: dict | None = None

    def reachable(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=5) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def query(self, text: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = json.loads(response.read())
        except (OSError, ValueError) as err:
            raise RemoteError(f"Dagster at {self.url} did not answer: {err}") from err
        if payload.get("errors"):
            raise RemoteError(f"Dagster refused the request: {payload['errors'][0].get('message')}")
        return payload["data"]

    def repository_for(self, job: str) -> dict:
        """The repository selector of the code location that defines ``job``."""
        if self._repository is None:
            data = self.query("""{ repositoriesOrError { ... on RepositoryConnection {
                nodes { name location { name } jobs { name } } } } }""")
            for node in data["repositoriesOrError"].get("nodes", []):
                if any(j["name"] == job for j in node["jobs"]):
                    self._repository = {"repositoryName": node["name"],
                                        "repositoryLocationName": node["location"]["name"]}
                    break
            else:
                raise RemoteError(f"no code location at {self.url} defines the job {job}")
        return self._repository

    def add_partition(self, partitions_def: str, key: str, job: str = "process_tracks") -> None:
        data = self.query(
            """mutation($repo: RepositorySelector!, $name: String!, $key: String!) {
                 addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
                   __typename ... on PythonError { message } ... on UnauthorizedError { message } } }""",
            {"repo": self.repository_for(job), "name": partitions_def, "key": key})
        result = data["addDynamicPartition"]
        if result["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise RemoteError(f"Dagster did not add partition {key}: {result.get('message', result['__typename'])}")

    def launch(self, job: str, tags: dict[str, str], run_config: dict | None = None) -> str:
        repo = self.repository_for(job)
        data = self.query(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } }
                 ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } }
                 ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }""",
            {"params": {"selector": {**repo, "jobName": job}, "runConfigData": run_config or {},
                        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}})
        result = data["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
            raise RemoteError(f"Dagster did not start the run: {detail or result['__typename']}")
        return result["run"]["runId"]
