//! The ovn-ic logic: one module per engine node, plus the output node.
