"""The reliability and security suite (issue 12): carrier and database faults, hostile
clients and a socket fuzzer against a running warpd, on loopback, each bounded to seconds."""
