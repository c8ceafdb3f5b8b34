mod data;
mod gradient_check;
mod initialisation;
mod reference_equivalence;
mod util;
mod worked_example;
