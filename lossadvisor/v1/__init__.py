"""Generated code of `protos/lossadvisor/v1/advisor.proto` (`make proto` regenerates it)."""
