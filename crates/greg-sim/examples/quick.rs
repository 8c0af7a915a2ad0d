fn main() {
    let cells = greg_sim::sweep::sweep(&greg_sim::sweep::STRATEGIES, &greg_sim::sweep::PS, &greg_sim::sweep::FLAKES, 2000, 1);
    print!("{}", greg_sim::sweep::markdown(&cells));
    for c in &cells { if c.report.violations > 0 { println!("VIOLATION {} {:?}", c.name, c.report.first_violation); } }
}
