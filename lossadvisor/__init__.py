"""Generated protobuf and gRPC code for `protos/lossadvisor/`. Do not edit: regenerate with `make proto`."""
