import React, { useState } from "react";

interface ButtonProps {
  label: string;
  onClick: () => void;
}

export function Button({ label, onClick }: ButtonProps) {
  return <button onClick={onClick}>{label}</button>;
}

export const Counter = () => {
  const [count, setCount] = useState(0);
  return (
    <div>
      <Button label={`Clicked ${count}`} onClick={() => setCount(count + 1)} />
    </div>
  );
};

class Panel extends React.Component<{ title: string }> {
  render() {
    return <section>{this.props.title}</section>;
  }
}

export default Panel;
