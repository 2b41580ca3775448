module attributes {aotc.model = "simple_net"} {
  func.func @forward(%p_conv_weight: tensor<6x3x5x5xf32>, %p_conv_bias: tensor<6xf32>, %p_fc1_weight: tensor<10x1176xf32>, %p_fc1_bias: tensor<10xf32>, %p_fc2_weight: tensor<10x1176xf32>, %p_fc2_bias: tensor<10xf32>, %b_mask: tensor<6x14x14xi1>, %x: tensor<1x3x32x32xf32>) -> (tensor<1x10xf32>, tensor<1x10xf32>) {
    %conv2d = "aten.conv2d"(%x, %p_conv_weight, %p_conv_bias) {operand_names = ["input", "weight", "bias"]} : (tensor<1x3x32x32xf32>, tensor<6x3x5x5xf32>, tensor<6xf32>) -> (tensor<1x6x28x28xf32>) loc("conv2d"("/work/main/tools/export_simple_net.py":29:0))
    %relu = "aten.relu"(%conv2d) {operand_names = ["self"]} : (tensor<1x6x28x28xf32>) -> (tensor<1x6x28x28xf32>) loc("relu"("/work/main/tools/export_simple_net.py":30:0))
    %max_pool2d = "aten.max_pool2d"(%relu) {operand_names = ["self"], kernel_size = array<i64: 2, 2>} : (tensor<1x6x28x28xf32>) -> (tensor<1x6x14x14xf32>) loc("max_pool2d"("/work/main/tools/export_simple_net.py":31:0))
    %mul = "aten.mul_tensor"(%max_pool2d, %b_mask) {operand_names = ["self", "other"]} : (tensor<1x6x14x14xf32>, tensor<6x14x14xi1>) -> (tensor<1x6x14x14xf32>) loc("mul"("/work/main/tools/export_simple_net.py":32:0))
    %flatten = "aten.flatten_using_ints"(%mul) {operand_names = ["self"], start_dim = 1 : i64} : (tensor<1x6x14x14xf32>) -> (tensor<1x1176xf32>) loc("flatten"("/work/main/tools/export_simple_net.py":33:0))
    %linear = "aten.linear"(%flatten, %p_fc1_weight, %p_fc1_bias) {operand_names = ["input", "weight", "bias"]} : (tensor<1x1176xf32>, tensor<10x1176xf32>, tensor<10xf32>) -> (tensor<1x10xf32>) loc("linear"("/work/main/tools/export_simple_net.py":34:0))
    %linear_1 = "aten.linear"(%flatten, %p_fc2_weight, %p_fc2_bias) {operand_names = ["input", "weight", "bias"]} : (tensor<1x1176xf32>, tensor<10x1176xf32>, tensor<10xf32>) -> (tensor<1x10xf32>) loc("linear_1"("/work/main/tools/export_simple_net.py":35:0))
    %relu_1 = "aten.relu"(%linear) {operand_names = ["self"]} : (tensor<1x10xf32>) -> (tensor<1x10xf32>) loc("relu_1"("/work/main/tools/export_simple_net.py":36:0))
    %relu_2 = "aten.relu"(%linear_1) {operand_names = ["self"]} : (tensor<1x10xf32>) -> (tensor<1x10xf32>) loc("relu_2"("/work/main/tools/export_simple_net.py":37:0))
    return %relu_2, %relu_1 : tensor<1x10xf32>, tensor<1x10xf32>
  }
}
