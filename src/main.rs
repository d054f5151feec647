fn main() {
    println!("cpm-harness");
}
