// Sample files for the language picker. Each language's files are opened together, so a completion in one
// can draw on the others (definitions and similar snippets: the context panel shows which were used).
export interface Sample { name: string; text: string; }
export interface Language { id: string; label: string; samples: Sample[]; }

export const LANGUAGES: Language[] = [
  {
    id: 'python', label: 'Python', samples: [
      { name: 'main.py', text: 'from shapes import Circle, area_of\n\n\ndef total_area(shapes):\n' +
        '    """Return the summed area of all shapes."""\n' +
        '    return sum(area_of(s) for s in shapes)\n\n\ndef add(a, b):\n    """Return the sum of a and b."""\n' },
      { name: 'shapes.py', text: 'import math\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass Circle:\n' +
        '    radius: float\n\n\ndef area_of(circle):\n    """Return the area of a circle."""\n' +
        '    return math.pi * circle.radius ** 2\n' },
      { name: 'scratch.py', text: '' },
    ],
  },
  {
    id: 'javascript', label: 'JavaScript', samples: [
      { name: 'main.js', text: 'import { clamp } from \'./util.js\';\n\n' +
        '// Returns the average of the numbers in `xs`, or 0 for an empty array.\nfunction average(xs) {\n' },
      { name: 'util.js', text: 'export function clamp(x, lo, hi) {\n  return Math.min(hi, Math.max(lo, x));\n}\n' },
    ],
  },
  {
    id: 'typescript', label: 'TypeScript', samples: [
      { name: 'stack.ts', text: 'export class Stack<T> {\n  private items: T[] = [];\n\n' +
        '  push(item: T): void {\n    this.items.push(item);\n  }\n\n  pop(): T | undefined {\n' },
    ],
  },
  {
    id: 'cpp', label: 'C++', samples: [
      { name: 'main.cpp', text: '#include <vector>\n\n// Returns the sum of the values in v.\n' +
        'int sum(const std::vector<int>& v) {\n' },
    ],
  },
  {
    id: 'go', label: 'Go', samples: [
      { name: 'main.go', text: 'package main\n\nimport "fmt"\n\n// Max returns the larger of a and b.\n' +
        'func Max(a, b int) int {\n' },
    ],
  },
  {
    id: 'rust', label: 'Rust', samples: [
      { name: 'main.rs', text: '/// Returns the factorial of n.\nfn factorial(n: u64) -> u64 {\n' },
    ],
  },
  {
    id: 'java', label: 'Java', samples: [
      { name: 'Main.java', text: 'public class Main {\n    // Returns true when n is even.\n' +
        '    static boolean isEven(int n) {\n' },
    ],
  },
];

export const sampleUri = (lang: string, name: string) => `file:///playground/${lang}/${name}`;
